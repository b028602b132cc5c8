title "T"
shot 1 wide 5s
